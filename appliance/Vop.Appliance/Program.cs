using Vop.Appliance.Cli;

return VopCommandLine.Build().Parse(args).Invoke();
