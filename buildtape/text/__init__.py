"""What the commands print for people: one module per kind of result, the units in one."""
