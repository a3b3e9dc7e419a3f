"""What training and the service share: the model folder's description, image geometry, mosaics.
Depends on neither half."""
