"""What training and the service share: the model folder's description, image geometry, the
preprocessing recipes, the novelty score, mosaics. Depends on neither half."""
