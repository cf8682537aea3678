import random
from typing import Callable, Dict, List


class AuxiliaryEndpoints:
    def perform(self, numbers: List[float]) -> float:
        """Sum of the numbers."""
        return sum(numbers)

    def auxiliary_endpoints(self) -> Dict[str, Callable]:
        """Extra POST endpoints, served at /api/v1/<path>."""
        return {
            "/explain": self.explain,
            "/random": self.random,
        }

    def explain(self, numbers: List[float]) -> Dict[str, float]:
        """Share of each number in the sum."""
        total = sum(numbers)
        if total == 0:
            raise ValueError("the numbers add up to 0, nothing to explain")
        return {str(n): n / total for n in numbers}

    def random(self, start: int = 0, end: int = 10) -> int:
        """A random integer in [start, end]."""
        return random.randint(start, end)

    def docs_input_examples(self) -> Dict[str, dict]:
        """Examples per endpoint."""
        return {
            "/perform": {"numbers": [40, 2]},
            "/explain": {"numbers": [40, 2]},
            "/random": {"start": 1, "end": 6},
        }
