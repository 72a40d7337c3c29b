"""The Latent Lab web page: one module per tab over `genmodels.lab.Lab`, and the serving settings."""
