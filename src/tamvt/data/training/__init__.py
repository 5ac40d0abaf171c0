"""Training samples: windows cut from videos, their augmentation, static pseudo-videos, the synthetic training
set, and the sample type they all produce."""
