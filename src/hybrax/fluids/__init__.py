"""hybrax.fluids"""
