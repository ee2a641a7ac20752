"""A Trainer module whose run_fn raises."""


def run_fn(fn_args):
    raise ValueError(f"cannot find column 'flipper' among {len(fn_args.train_files)} training files")
