"""hybrax.md"""
