using Microsoft.Data.Sqlite;

namespace ControlPlane.Tests.Storage;

/// <summary>A database path in a fresh temp directory that does not exist yet, removed with its -wal/-shm files on dispose.</summary>
internal sealed class TempDatabaseFile : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "controlplane-tests", Guid.NewGuid().ToString("N"));

    // Nested so every test also checks that the storage creates missing directories.
    public string DatabasePath => Path.Combine(_root, "data", "grains.db");

    public void Dispose()
    {
        // Pooled connections keep the file open; release them so the directory can be deleted on every OS.
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
