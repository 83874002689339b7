"""Who is logged in: sessions, the login rate limit, kept connections and their sweeper."""
