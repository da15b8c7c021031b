"""hybrax.nn"""
