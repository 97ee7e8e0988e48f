"""The lab behind ``lossatlas compare``: embedded data sets, tasks, the training loop, reports."""
