"""All I/O the workflows need: deliver a step, record how an enrollment ended."""
