"""seqlab: NLP sequence modelling on PyTorch Lightning and Hydra.

``seqlab.load(path)`` turns a checkpoint (or an exported directory) into a predictor for raw text.
"""

__version__ = "0.1.0"
__all__ = ["load"]


def __getattr__(name: str):
    # Lazy: `import seqlab` (the CLI's --help) should not pay for importing torch and Lightning.
    if name == "load":
        from seqlab.predictor import load

        return load
    raise AttributeError(f"module 'seqlab' has no attribute {name!r}")
