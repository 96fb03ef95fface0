"""The router: validate, size the image, decide the legs from the record on file, fan out."""
