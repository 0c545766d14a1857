"""The model manager: GGUF header, memory estimate, the machine's budget, fit check, catalog, picker, discovery, downloads, store, starter model."""
