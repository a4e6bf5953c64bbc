using ControlPlane.Host.Mcp;

namespace ControlPlane.Tests.Operations;

/// <summary>Session settings an operator could get wrong are refused at start, with the setting named.</summary>
public sealed class SessionOptionsTests
{
    [Theory]
    [InlineData("7.00:00:00", "01:00:00", "00:01:00", null)]
    [InlineData("00:00:00", "01:00:00", "00:01:00", null)]
    [InlineData("-00:00:01", "01:00:00", "00:01:00", "ControlPlane:Sessions:RecordRetention must not be negative")]
    [InlineData("00:00:30", "01:00:00", "00:01:00", "ControlPlane:Sessions:RecordRetention must be at least ParkAfter")]
    [InlineData("7.00:00:00", "00:00:30", "00:01:00", "ControlPlane:Sessions:RecordSweepInterval must be at least 00:01:00")]
    public void Record_retention_settings_are_checked(string retention, string sweep, string parkAfter, string? problem)
    {
        var options = new SessionOptions
        {
            RecordRetention = TimeSpan.Parse(retention, System.Globalization.CultureInfo.InvariantCulture),
            RecordSweepInterval = TimeSpan.Parse(sweep, System.Globalization.CultureInfo.InvariantCulture),
            ParkAfter = TimeSpan.Parse(parkAfter, System.Globalization.CultureInfo.InvariantCulture),
        };

        var problems = options.Validate("ControlPlane:Sessions").ToList();
        if (problem is null) Assert.Empty(problems);
        else Assert.Contains(problems, p => p.StartsWith(problem, StringComparison.Ordinal));
    }
}
