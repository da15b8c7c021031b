"""hybrax.hybrid"""
