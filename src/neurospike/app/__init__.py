"""The live browser app (`neurospike app`): a FastAPI server streaming a neuron simulated with the project's own
solvers over a WebSocket, and the page in ``static/``. See ``server.py`` for the protocol, DEVELOPERS.md for the set-up."""
