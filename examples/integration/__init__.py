"""The seed's order context at its boundaries: the published language it speaks to other
contexts (example 79) and the anti-corruption layer in front of a payment provider."""
