"""Demo video data: episode shards on disk (`shards`) and clip batches (`clips`)."""
