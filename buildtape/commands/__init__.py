"""One module per command. Each parses its arguments, builds the options object of one
engine function (defaults from its dataclass), calls it, renders the result and returns
an ``ExitCode``; ``buildtape.cli.main`` turns errors and codes into the process's exit."""
