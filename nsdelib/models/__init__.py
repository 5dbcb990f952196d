"""Stage 2, the models: timm's ConvNeXt, the same network as a Neural SDE, and the shapes of its noise."""
