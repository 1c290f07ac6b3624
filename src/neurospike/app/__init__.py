"""The live browser app (`neurospike app`): a FastAPI server streaming a neuron simulated with the project's own
solvers over a WebSocket, and the page in ``static/``. Protocol: ``server.py``; set-up: DEVELOPERS.md."""
