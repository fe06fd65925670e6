"""Images: the EfficientNet-Lite backbone as a Hugging Face model, reading image folders and zips, pixels."""
