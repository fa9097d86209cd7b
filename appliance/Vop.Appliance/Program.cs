using Vop.Appliance.Cli;

return VopCommandLine.Run(args);
