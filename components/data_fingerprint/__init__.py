"""data_fingerprint: the content hash of the data a run is about to read."""
