"""Flask blueprints: thin views that parse a request, call one service and render the outcome."""
