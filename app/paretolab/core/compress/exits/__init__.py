"""Early exit: the heads, the exit graph and the technique that trains and places them."""
