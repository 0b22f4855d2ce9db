"""The project's own `scrapy` commands (COMMANDS_MODULE); each module is one command."""
