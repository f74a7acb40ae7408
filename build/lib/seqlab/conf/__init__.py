# The configs as a package (seqlab.conf), so that they ship inside the wheel: see pyproject.toml.
