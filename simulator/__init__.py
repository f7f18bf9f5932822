"""Local platform simulator: serves documented TikTok shapes (shared/platforms.md) on loopback."""
