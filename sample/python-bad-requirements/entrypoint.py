class BadRequirements:
    def perform(self) -> str:
        return "never deployed: requirements.txt names a package that does not exist"
