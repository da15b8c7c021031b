"""hybrax.io"""
