import os


class EnvSecretFatman:
    def __init__(self):
        # A plain runtime variable (runtime_env in fatman.yaml) and a secret one
        # (secret_runtime_env_file: .env, read by the client and sent separately).
        self.model_zoo = os.environ.get("TORCH_MODEL_ZOO")
        # Unset when deployed without a .env file (copy .env.dist to .env first).
        self.secret_key = os.environ.get("SECRET_KEY") or ""

    def perform(self) -> dict:
        """Shows what the fatman sees of its environment, never the secret itself."""
        return {
            "TORCH_MODEL_ZOO": self.model_zoo,
            "SECRET_KEY_set": bool(self.secret_key),
            "SECRET_KEY_length": len(self.secret_key),
            # Build-time variables are baked into the image and blanked at runtime by the platform.
            "DEBIAN_FRONTEND": os.environ.get("DEBIAN_FRONTEND"),
        }

    def docs_input_example(self) -> dict:
        return {}
