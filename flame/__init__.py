"""Stack model, folded stacks, SVG, speedscope and Chrome-trace exports."""
