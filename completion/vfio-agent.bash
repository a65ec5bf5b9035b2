# bash completion for vfio-agent(8)
# SPDX-License-Identifier: GPL-2.0-or-later
_vfio_agent()
{
	local cur prev verb i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-c|--config|-r|--root) ((i++)) ;;
		-*) ;;
		*) verb=${COMP_WORDS[i]}; break ;;
		esac
	done
	case $prev in
	-c|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	-r|--root) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--pci) COMPREPLY=($(compgen -W "$(ls /sys/bus/pci/devices 2>/dev/null)" -- "$cur")); return ;;
	--driver) COMPREPLY=($(compgen -W "$(cut -d' ' -f1 /proc/modules 2>/dev/null)" -- "$cur")); return ;;
	--device) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--backend) COMPREPLY=($(compgen -W "bpf proc" -- "$cur")); return ;;
	--vm|--duration) return ;;
	esac
	case $verb in
	"") COMPREPLY=($(compgen -W "forward diagnose watch hook handoff daemon init check version
		-c --config -r --root -v --verbose -q --quiet -h --help -V --version" -- "$cur")) ;;
	forward) COMPREPLY=($(compgen -W "up down status --vm --json --help" -- "$cur")) ;;
	diagnose) COMPREPLY=($(compgen -W "--vm --pci --driver --device --json --backend --help" -- "$cur")) ;;
	watch) COMPREPLY=($(compgen -W "--vm --pci --driver --device --json --duration --help" -- "$cur")) ;;
	handoff) COMPREPLY=($(compgen -W "prepare release --vm --dry-run --json --help" -- "$cur")) ;;
	daemon) COMPREPLY=($(compgen -W "--foreground --help" -- "$cur")) ;;
	init) COMPREPLY=($(compgen -W "--vm --help" -- "$cur")) ;;
	check) COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
	esac
}
complete -F _vfio_agent vfio-agent
