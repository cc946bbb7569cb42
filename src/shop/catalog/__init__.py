"""The catalog context: products, prices and full-text search (state-stored, from the
``ProductDetails`` contract). Answers ``GetProductForSale`` for ordering."""
