"""SFTP through paramiko: connections, the pool, pipelined reads."""
