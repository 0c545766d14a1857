"""One conversation: the backend protocol and its llama.cpp and remote backends, the session, context fitting, history, saved KV states."""
