"""Live calls: the Pipecat pipeline built from a BotConfig, its transports and runner."""
