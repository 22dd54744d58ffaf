"""Lightning callbacks: TensorBoard diagnostics of what happens inside training."""
