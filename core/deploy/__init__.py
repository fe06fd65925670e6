"""After training: prediction, exports (HF, ONNX, GGUF), the prediction and chat servers, chat feedback and monitoring."""
