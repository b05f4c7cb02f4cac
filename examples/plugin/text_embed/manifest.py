"""Plugin manifest: what the extractor produces."""

feature_extractor_name = "text_embed"
version = "1.0.0"
description = "Embeds text into a tiny fixed-size vector (a demo of the plugin lifecycle)."
features = [
    {
        "feature_type": "embedding",
        "feature_name": "text_embedding",
        "embedding_dim": 8,
        "distance_metric": "cosine",
    },
]
