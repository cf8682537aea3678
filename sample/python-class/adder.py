from typing import List


class AdderModel:
    def perform(self, numbers: List[float]) -> float:
        """Add numbers.

        :param numbers: list of numbers to sum up
        :return: sum of the numbers
        """
        return sum(numbers)

    def docs_input_example(self) -> dict:
        """Example input shown in the docs page."""
        return {"numbers": [40, 2]}
