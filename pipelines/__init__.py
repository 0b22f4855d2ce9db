"""Item pipelines, one concern per module, in the order settings.ITEM_PIPELINES runs them:
clean, validate, copyright, provenance, store."""
