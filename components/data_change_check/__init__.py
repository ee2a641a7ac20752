"""data_change_check: has the data changed since the last successful run?"""
