"""Base models: the registry of shipped and local models, their converters, LoRA adapters, the ONNX wrapper and which model reads a language."""
