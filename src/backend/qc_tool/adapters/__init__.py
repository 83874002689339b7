"""The outside world: SFTP servers, local folders, the result cache."""
