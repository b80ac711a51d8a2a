"""Training and evaluation of FTCN+TT on preprocessed datasets."""
