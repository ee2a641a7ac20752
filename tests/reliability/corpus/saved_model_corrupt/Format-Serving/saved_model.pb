this is not a SavedModel graph
