"""What every wing shares: the exit contract, argument checks, child processes, pages."""
