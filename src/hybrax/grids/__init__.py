"""hybrax.grids"""
